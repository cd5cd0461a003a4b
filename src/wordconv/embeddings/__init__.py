"""Pretrained word vectors: reading word2vec/GloVe/fastText files, named vector sets, training word2vec."""
