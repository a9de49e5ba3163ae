"""``md.save`` / ``md.load``."""


def save(obj, path) -> None:
    raise NotImplementedError("md.save is not implemented yet")


def load(path):
    raise NotImplementedError("md.load is not implemented yet")
