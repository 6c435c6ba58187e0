"""``dsc-grasp train`` (not implemented yet)."""


def register(sub):
    p = sub.add_parser("train", help="(not implemented yet)")
    p.set_defaults(func=lambda args: print("not implemented yet") or 2)
