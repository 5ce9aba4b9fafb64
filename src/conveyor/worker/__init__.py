"""Job workers: claim jobs, run the provider for their action type, report the result."""
