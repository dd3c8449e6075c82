"""nn layers, SystemDS style: each module exposes forward, backward and init (where it has parameters)."""
