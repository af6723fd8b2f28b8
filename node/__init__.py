"""The data holder's server: config, microdata, table engine, ledger, gRPC servicer."""
