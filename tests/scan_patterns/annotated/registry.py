_OPEN = {}


def lookup(name):
  return _OPEN[name]
