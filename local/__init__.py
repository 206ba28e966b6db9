"""The local stack: the whole request path on one machine, against moto."""
