#!/bin/bash
# Outputs that a change of layout must leave bit-identical: dev-suite rows (probe, centroid, two heads),
# a corpus job and a registered-task + /classify request. Run it on two checkouts, then compare:
#   bash scripts/layout_outputs.sh OUT_A   (old checkout, its package installed)
#   bash scripts/layout_outputs.sh OUT_B   (new checkout)
#   python scripts/compare_outputs.py OUT_A OUT_B --json results/layout/same-outputs.json
set -e
cd "$(dirname "$0")/.." && export HF_HUB_OFFLINE=1
O=$1; mkdir -p $O
python -m tart.evaluate.dev_suite --methods "probe;centroid;tart:tart-residual;tart:tart-reader,names=1,pool=1" --ks 8,16 --seeds 2 \
  --tasks wordnet-animal-food,user-text:snips,sklearn:wine --embedders minilm-l6 --json $O/dev.json > $O/dev.log 2>&1
printf 'text,label\nthe striker scored a goal,sport\nthe team won the cup,sport\nthe chef baked bread,food\nrice and beans for dinner,food\n' > $O/ex.csv
printf 'id,text\n1,a penalty in the final minute\n2,soup with fresh herbs\n3,the goalkeeper saved it\n4,a slice of cake\n' > $O/q.csv
rm -f $O/corpus.jsonl; tart classify --examples $O/ex.csv --texts $O/q.csv --id-column id --output $O/corpus.jsonl > $O/classify.log 2>&1
python - "$O" <<'PY'
import json, sys, httpx as requests
import sys; sys.path.insert(0, "tests"); from local_server import LocalServer
O = sys.argv[1]
import os; os.environ["TART_STORE_PATH"] = O + "/store.sqlite"
if os.path.exists(O + "/store.sqlite"): os.remove(O + "/store.sqlite")
with LocalServer({"TART_STORE_PATH": O + "/store.sqlite", "TART_CACHE_DIR": O + "/cache"}) as s:
    ex = [{"text": t, "label": l} for t, l in [("the striker scored a goal","sport"),("the team won the cup","sport"),("the chef baked bread","food"),("rice and beans for dinner","food")]]
    r = requests.post(s.url + "/tasks/create", json={"name": "t", "examples": ex}).json()
    q = requests.post(s.url + "/tasks/classify", json={"task_id": r["id"], "texts": ["a penalty in the final minute", "soup with fresh herbs"]}).json()
    c = requests.post(s.url + "/classify", json={"examples": ex, "texts": ["the goalkeeper saved it", "a slice of cake"], "unlabeled": ["a match", "an oven"]}).json()
    q.pop("task_id", None)
    json.dump({"task": q, "classify": c}, open(O + "/service.json", "w"), indent=1, sort_keys=True)
PY
echo done
