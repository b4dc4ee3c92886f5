"""Pure numerical building blocks shared by algorithms (returns, normalization, distributions)."""
