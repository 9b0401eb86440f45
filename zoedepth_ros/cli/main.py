"""``zoedepth``: one command with subcommands; each lives in its own module.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports stay inside ``run`` so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys

from zoedepth_ros import __version__
from zoedepth_ros.cli.common import os_error_line
from zoedepth_ros.errors import ZoeDepthError

COMMANDS = {
    'infer': 'zoedepth_ros.cli.infer',
    'synth': 'zoedepth_ros.cli.synth',
    'train': 'zoedepth_ros.cli.train',
    'eval': 'zoedepth_ros.cli.eval',
    'bag': 'zoedepth_ros.cli.bag',
    'export': 'zoedepth_ros.cli.export',
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='zoedepth',
        description='Monocular metric depth with ZoeDepth: inference, evaluation, training '
                    'and rosbag tools.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # for workers started again
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    try:
        return int(args._run(args) or 0)
    except ZoeDepthError as err:
        logging.getLogger('zoedepth').error('%s', err)
        return 2
    except OSError as err:  # a file or folder the user named: unreadable, unwritable, full
        logging.getLogger('zoedepth').error('%s', os_error_line(err))
        return 2
    except KeyboardInterrupt:
        logging.getLogger('zoedepth').error('interrupted')
        return 130


def console_main() -> int:
    """The ``zoedepth`` console script (and ``python -m zoedepth_ros.cli.main``): ``main``,
    then the objects left are frozen out of the cycle collector before the interpreter exits.

    With torch and timm loaded, the collector's passes over millions of module objects during
    interpreter teardown take about a second; nothing in them needs collecting at exit. Not in
    ``main``: tests call that in their own long-lived process.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == '__main__':
    sys.exit(console_main())
