"""nn layers, SystemDS style: each module has forward, backward and init (if it has parameters)."""
