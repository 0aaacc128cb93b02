#!/usr/bin/env bash
# Run HERE (a machine with PyPI), from the repository root, before the GPU session's one call:
# gathers what the device machine lacks into two ignored folders that the call carries.
#   .whl/    wheels of hydra-core, omegaconf, datasets, codecarbon, wandb and their needs
#            (Python 3.12, manylinux x86-64), minus the packages the device image already has
#   .carry/  the Hub-layout corpus copy and a 32k tokenizer trained on it (the device has no
#            ../shared and no network)
# Usage: bash experiments/bench_gpu/device/prepare.sh [path to pt-corpus-instruct-layout]
set -euo pipefail
layout=${1:-../shared/data/pt-corpus-instruct-layout}
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/.carry/' .git/info/exclude || echo '/.carry/' >> .git/info/exclude
rm -rf .whl .carry && mkdir -p .whl .carry /tmp/ttl-sdist-wheels
# antlr4-python3-runtime 4.9.3 (hydra's parser) is published as a source archive only.
python -m pip wheel -q --no-deps -w /tmp/ttl-sdist-wheels antlr4-python3-runtime==4.9.3
python -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any --find-links /tmp/ttl-sdist-wheels -d .whl \
    hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 datasets==5.2.0 \
    codecarbon==3.3.2 wandb==0.31.0
# The loss kernels measured against ttl's chunked loss (pure Python + Triton; torch is there).
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform any -d .whl \
    cut-cross-entropy liger-kernel
# Already in the device image (experiments/bench_gpu/device/README.md lists where this comes from).
for have in numpy pandas pyarrow fsspec huggingface_hub filelock tqdm xxhash packaging PyYAML pyyaml \
            requests urllib3 idna certifi charset_normalizer click rich typer psutil py_cpuinfo \
            prometheus_client nvidia_ml_py protobuf typing_extensions aiohttp aiosignal attrs \
            frozenlist multidict yarl propcache aiohappyeyeballs hf_xet httpx httpcore h11 anyio \
            shellingham markdown_it_py mdurl pygments python_dateutil six pytz tzdata; do
    rm -f .whl/"$have"-*.whl .whl/"${have,,}"-*.whl
done
cp -r "$layout" .carry/pt-corpus-instruct-layout
python -m ttl.tokenizer data_path=.carry/pt-corpus-instruct-layout vocab_size=32000 \
    output_dir=.carry/tokenizer-32k
du -sh .whl .carry
ls .whl
