#!/usr/bin/env bash
# The label-issue finder on a trained model (ensemble/label_issues.h), measured: demo data whose labels
# carry the demo's own four errors (train/relabel.csv lists their fixes) plus planted ones (a relabel file
# that flips every 15th person's gender and moves every 15th person's, offset 7, age to another band),
# two folds of configs/demo.toml trained with --fold all, then --find-label-issues on the out-of-fold
# probabilities, scored against the planted (person, field) pairs: precision and recall.
#
#   scripts/label_issues_demo.sh [BUILD_DIR] [extra effnet_train flags, e.g. --epochs 20 --device cuda]
# Writes under label_demo/ (data, runs); about 6 minutes of training on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
work=label_demo
rm -rf "$work"
"$build"/apps/effnet_make_demo "$work/data"

# The plants, in the relabel format: people not among the demo's own errors.
python3 - "$work" <<'PY'
import csv, sys
work = sys.argv[1]
people = list(csv.DictReader(open(f"{work}/data/train/train.csv")))
known = {row["path"] for row in csv.DictReader(open(f"{work}/data/train/relabel.csv"))}
with open(f"{work}/plants.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["path", "field", "value"])
    for i, p in enumerate(people):
        if p["path"] in known:
            continue
        if i % 15 == 0:
            out.writerow([p["path"], "gender", "female" if p["gender"] == "male" else "male"])
        if i % 15 == 7:
            age = int(p["age"])
            out.writerow([p["path"], "age", 45 if age < 30 else 70 if age < 60 else 22])
PY

"$build"/apps/effnet_train --config configs/demo.toml --data "$work/data" --relabel "$work/plants.csv" \
    --folds 2 --fold all --out "$work/run" "$@"
"$build"/apps/effnet_predict --find-label-issues "$work/run/oof_probs.csv" --out "$work/label_issues.csv"

python3 - "$work" <<'PY'
import csv, sys
work = sys.argv[1]
def pairs(path):
    return {(r["path"], r["field"]) for r in csv.DictReader(open(path))}
# The demo's own errors whose fix changes the class (an age moved within its band is invisible).
people = {r["path"]: r for r in csv.DictReader(open(f"{work}/data/train/train.csv"))}
band = lambda age: 0 if age < 30 else 1 if age < 60 else 2
demo = set()
for r in csv.DictReader(open(f"{work}/data/train/relabel.csv")):
    if r["field"] != "age" or band(int(r["value"])) != band(int(people[r["path"]]["age"])):
        demo.add((r["path"], r["field"]))
planted = pairs(f"{work}/plants.csv") | demo
flagged = pairs(f"{work}/label_issues.csv")
hits = planted & flagged
print(f"planted {len(planted)} ({len(demo)} of the demo's own), flagged {len(flagged)}, found {len(hits)}: "
      f"precision {len(hits) / max(len(flagged), 1):.2f}, recall {len(hits) / len(planted):.2f}")
for field in ("gender", "age", "mask-swap"):
    p = {x for x in planted if x[1] == field}
    f = {x for x in flagged if x[1] == field}
    print(f"  {field:9s} planted {len(p):3d}  flagged {len(f):3d}  found {len(p & f):3d}")
PY
