#!/bin/sh
# Demo event producer (docker-compose profile `demo`): streams the application_test rows of the raw data
# (or of the synthetic data the prepare job generated) to the applications topic, forever.
set -eu

DATA_DIR="${CREDIT_SCORER_PATHS__DATA_DIR:-/var/lib/credit-scorer}"
RAW_DIR="${CREDIT_SCORER_PATHS__RAW_DIR:-/data/raw}"
RATE="${PRODUCE_RATE:-200}"

for dir in "$RAW_DIR" "$DATA_DIR/raw-synthetic"; do
    for name in application_test.csv.gz application_test.csv; do
        if [ -f "$dir/$name" ]; then
            exec credit-scorer stream produce "$dir/$name" --rate "$RATE" --repeat
        fi
    done
done
echo "produce: no application_test.csv(.gz) in $RAW_DIR or $DATA_DIR/raw-synthetic" >&2
exit 2
