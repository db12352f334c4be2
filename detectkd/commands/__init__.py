"""One-shot commands: check, backtest, load-history and export, silence, dtk."""
