import f_factory


class Base:

  def save_with(self, mngr, step):
    mngr.save(step, args=None)  # expect: save

  def fresh(self, directory):
    return f_factory.make_manager(directory)
