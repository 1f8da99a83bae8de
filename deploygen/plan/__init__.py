"""Planning: a validated profile turned into the concrete deployment the templates render."""
