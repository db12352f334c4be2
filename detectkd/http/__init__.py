"""The HTTP edge shared by the daemon and a `workers:` supervisor: who is asking
(`auth`) and what a browser may do (`guard`)."""
