"""`lumigo-injector demo`: the whole chain on a laptop, no cluster, no Lumigo account."""
