#!/usr/bin/env bash
# Prepares what benchmarks/gpu_check.sh takes to a GPU machine that has torch + CUDA and no network:
#   .whl/     CPython 3.12 manylinux x86-64 wheels of deepstation's packages that machine lacks, at the versions in
#             constraints.txt (downloaded with --no-deps: every package that the others need is named here too)
#   .espeak/  Debian's espeak-ng packages (builtin:speech synthesises its audio with it; gpu_check.sh unpacks them
#             into a private folder) and a stub libpcaudio.so.0 that stands in for PulseAudio/ALSA, which
#             `espeak-ng --stdout` never uses
# Both folders are git-ignored (.git/info/exclude); name them in the device tool's `carry`. Needs pip, a network,
# apt-get (Debian or Ubuntu, x86-64) and a C compiler.
#
#   bash benchmarks/gpu_check_prepare.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then PY=python3; fi
# what the GPU machine lacks (its package list: the device tool's KINDS.md) and deepstation needs to train the digits
# and speech tasks with tracking off; sktime (series builtins) too, so every `import deepstation...` works there.
# Not carried: mlflow (tracking; --no-track), ray (--workers > 1; its cp312 wheel alone is 75.6 MiB, over the 64 MiB a
# device call may carry).
PACKAGES="pydantic pydantic_core annotated-types typing-inspection typing_extensions sktime scikit-base soundfile cffi
          pycparser"

for dir in .whl .espeak; do
  if ! git check-ignore -q "$dir/x"; then echo "/$dir/" >> "$(git rev-parse --git-dir)/info/exclude"; fi
done

pins=()
for name in $PACKAGES; do
  pattern="^$(echo "$name" | sed 's/[-_]/[-_]/g')=="
  if ! pin=$(grep -i -E "$pattern" constraints.txt); then
    echo "gpu_check_prepare: $name is not pinned in constraints.txt" >&2
    exit 1
  fi
  pins+=("$pin")
done
rm -rf .whl
mkdir .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"

rm -rf .espeak
mkdir .espeak
(cd .espeak && apt-get download espeak-ng libespeak-ng1 espeak-ng-data libsonic0)
cat > .espeak/pcaudio_stub.c <<'EOF'
/* A stand-in for libpcaudio.so.0 (Debian's libpcaudio0, which pulls in PulseAudio and ALSA): espeak-ng links it
   but never calls it when it writes WAV to stdout (--stdout). Every call fails cleanly: no audio device.
   Build: cc -shared -fPIC -O2 -Wl,-soname,libpcaudio.so.0 -o libpcaudio.so.0 pcaudio_stub.c */
#include <stddef.h>
#include <stdint.h>
struct audio_object;
struct audio_object *create_audio_device_object(const char *device, const char *app, const char *desc)
{ (void)device; (void)app; (void)desc; return NULL; }
int audio_object_open(struct audio_object *o, int format, uint32_t rate, uint8_t channels)
{ (void)o; (void)format; (void)rate; (void)channels; return -1; }
void audio_object_close(struct audio_object *o) { (void)o; }
void audio_object_destroy(struct audio_object *o) { (void)o; }
int audio_object_write(struct audio_object *o, const void *data, size_t bytes)
{ (void)o; (void)data; (void)bytes; return -1; }
int audio_object_drain(struct audio_object *o) { (void)o; return -1; }
int audio_object_flush(struct audio_object *o) { (void)o; return -1; }
const char *audio_object_strerror(struct audio_object *o, int error)
{ (void)o; (void)error; return "no audio device (pcaudio stub)"; }
EOF
cc -shared -fPIC -O2 -Wl,-soname,libpcaudio.so.0 -o .espeak/libpcaudio.so.0 .espeak/pcaudio_stub.c

ls -l .whl .espeak
echo "gpu_check_prepare: .whl $(du -sh .whl | cut -f1), .espeak $(du -sh .espeak | cut -f1);" \
  'carry: [".whl", ".espeak"]'
