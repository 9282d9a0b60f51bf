"""Background jobs: plain async functions in the module that owns them, run by
taskiq on the broker BROKER_URL names (app/jobs/broker.py), or in this process
when none is set."""
