# Sourced by up.sh and test.sh: make `uv` available and the locked environment installed.
UV_VERSION=0.13.8
if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  if [ ! -x .tools/bin/uv ]; then
    python3 -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  export PATH="$PWD/.tools/bin:$PATH"
fi
export UV_PYTHON_DOWNLOADS=never
uv sync --frozen --quiet
