"""Data: labelled texts and their label order, the bundled datasets and users' files, balanced splits,
and the names of labels as text. The names below are the ones a user needs:

    data = load_dataset("wordnet-animal-food")          # bundled, see list_datasets()
    support, test = balanced_split(data, k=16, seed=0)
"""
from tart.data.datasets import list_datasets, load_dataset
from tart.data.labels import LabelledTexts, sorted_labels
from tart.data.splits import balanced_split

__all__ = ["LabelledTexts", "balanced_split", "list_datasets", "load_dataset", "sorted_labels"]
