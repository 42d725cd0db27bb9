_OPEN = {}


def register(name, value):
  _OPEN[name] = value


def lookup(name):
  return _OPEN.get(name)
