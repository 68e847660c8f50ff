#!/usr/bin/env python3
# examples/lox/tests/gen_limits.py: writes the Lox programs that test the
# compiler's limits (too many constants, locals, upvalues, parameters and
# arguments; jumps and loops over 65535 bytes) into the given directory.
# They are generated at build time because they are long and regular;
# each carries its expectations as run.py reads them.
import os
import sys


def write(outdir, name, text):
    with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
        f.write(text)


def constants():
    body = "".join("  %d;\n" % i for i in range(256))
    return ("fun f() {\n" + body +
            "  256; // Error at '256': Too many constants in one chunk.\n"
            "}\n")


def locals_():
    # slot 0 holds the function itself: 255 more fit
    body = "".join("  var l%d;\n" % i for i in range(255))
    return ("fun f() {\n" + body +
            "  var over; // Error at 'over': Too many local variables in "
            "function.\n}\n")


def upvalues():
    outer = "".join("  var a%d;\n" % i for i in range(200))
    middle = "".join("    var b%d;\n" % i for i in range(56))
    uses = "".join("      a%d;\n" % i for i in range(200))
    uses += "".join("      b%d;\n" % i for i in range(56))
    return ("fun f() {\n" + outer + "  fun g() {\n" + middle +
            "    var c;\n    fun h() {\n" + uses +
            "      c; // Error at 'c': Too many closure variables in "
            "function.\n    }\n  }\n}\n")


def parameters():
    params = ", ".join("p%d" % i for i in range(255))
    return ("fun f(" + params + ",\n"
            "  q) {} // Error at 'q': Can't have more than 255 parameters.\n"
            "fun ok(" + params + ") { return p254; }\n")


def arguments():
    args = ", ".join(["true"] * 255)
    return ("fun f() {}\n"
            "f(" + args + ",\n"
            "  nil); // Error at 'nil': Can't have more than 255 "
            "arguments.\n")


def big_body():
    # each line compiles to 26 bytes: 2600 lines pass 65535
    return "".join("  a = a * a * a * a * a * a * a * a;\n"
                   for _ in range(2600))


def jump():
    return ("{\n  var a = 1;\n  if (false) {\n" + big_body() +
            "  } // Error at '}': Too much code to jump over.\n"
            "  print a; // the parser resynchronises here\n}\n")


def loop():
    return ("{\n  var a = 1;\n  while (false) {\n" + big_body() +
            "  } // Error at '}': Loop body too large.\n"
            "  print a;\n}\n")


def main():
    outdir = sys.argv[1]
    write(outdir, "limit_constants.lox", constants())
    write(outdir, "limit_locals.lox", locals_())
    write(outdir, "limit_upvalues.lox", upvalues())
    write(outdir, "limit_parameters.lox", parameters())
    write(outdir, "limit_arguments.lox", arguments())
    write(outdir, "limit_jump.lox", jump())
    write(outdir, "limit_loop.lox", loop())


if __name__ == "__main__":
    main()
