#!/bin/sh
# One-shot job of docker-compose: build the client features, train + register the model, load the cache.
#
# Raw data: the Home Credit CSV(.gz) files mounted at $CREDIT_SCORER_PATHS__RAW_DIR (/data/raw); when
# that folder holds no application_train file, a synthetic dataset in the same schema is generated
# (scale $SYNTH_SCALE, default 0.05) so the stack also runs without the real sample.
# Idempotent: features and model are reused when present (set PREPARE_FORCE=1 to rebuild); the cache
# load is an upsert and the switch makes the model's feature version live.
set -eu

DATA_DIR="${CREDIT_SCORER_PATHS__DATA_DIR:-/var/lib/credit-scorer}"
RAW_DIR="${CREDIT_SCORER_PATHS__RAW_DIR:-/data/raw}"
FEATURES="$DATA_DIR/features"
MODELS="$DATA_DIR/models"
FORCE="${PREPARE_FORCE:-0}"

if ! ls "$RAW_DIR"/application_train.csv* >/dev/null 2>&1; then
    RAW_DIR="$DATA_DIR/raw-synthetic"
    if [ "$FORCE" = "1" ] || ! ls "$RAW_DIR"/application_train.csv* >/dev/null 2>&1; then
        echo "prepare: no raw data mounted; generating synthetic data (scale ${SYNTH_SCALE:-0.05})"
        credit-scorer data synth --out "$RAW_DIR" --scale "${SYNTH_SCALE:-0.05}" --quiet
    fi
fi

if [ "$FORCE" = "1" ] || [ ! -f "$FEATURES/features.parquet" ]; then
    echo "prepare: building features from $RAW_DIR"
    credit-scorer features build --raw "$RAW_DIR" --out "$FEATURES"
fi

if [ "$FORCE" = "1" ] || ! ls "$MODELS"/*/model_card.json >/dev/null 2>&1; then
    echo "prepare: training and registering the model"
    credit-scorer train run --features "$FEATURES" --out "$MODELS" --no-plots
fi

echo "prepare: loading the feature cache"
credit-scorer cache load --features "$FEATURES" --switch --no-progress
credit-scorer cache status
echo "prepare: done"
