"""One module per task: `build(ctx) -> Iterator[Example]` (see `builders.build`)."""
