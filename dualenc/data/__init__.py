"""The data: the procedural renderer, captions, tokenizer, datasets (generated or your own images) and export."""
