"""Data layer: dataset specs, file formats, downloads, embeddings, the synthetic corpus, batching."""
