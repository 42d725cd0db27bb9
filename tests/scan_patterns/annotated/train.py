import runner


def train(steps):
  manager = runner.loop(0)
  for step in range(steps):
    manager.save(step, args=None)  # expect: save
  return manager.latest_step()  # expect: latest_step
