"""gist-harness: ablation studies of guided in-batch negatives (GISTEmbed, arXiv 2402.16829).

Only the version lives here, so that importing the report layer never pulls in torch.
"""

__version__ = "0.1.0"
