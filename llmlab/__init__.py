"""llmlab: the companion package of the executable textbook on large language models.

One module per idea; each chapter of the book imports what it explains:

- ``device``    best device, seeding, memory readout (every chapter)
- ``data``      the bundled story corpus and its generator (chapters 3, 5)
- ``train``     one small training loop (chapter 3; used by the zoo recipes)
- ``zoo``       bundled checkpoints, their recipes, and hub loading (every chapter)
- ``sampling``  greedy, temperature, top-k and top-p from scratch (chapter 5)
- ``metrics``   perplexity, entropy, distinct-n and repetition (chapters 3, 5)
- ``plot``      shared figure style (every chapter)
- ``widgets``   interactive panels (chapter 5)
- ``book``      glue computed numbers into the book's prose (every chapter)
"""

__version__ = "0.1.0"
