"""Storage: datapoints, detections, alert state, outbox, watermarks."""
