"""The only code that knows exchange wire formats or imports CCXT."""
