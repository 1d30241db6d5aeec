"""Neural building blocks: GRU encoders over frozen vectors, Gumbel sampling, selector and predictor."""
