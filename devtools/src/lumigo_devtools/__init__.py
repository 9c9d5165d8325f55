"""Development tools for the bundle: the embedded OTLP receiver and `lumigo-injector demo`.

Never part of the operator image: production code does not import this package.
"""
