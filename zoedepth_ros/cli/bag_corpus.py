"""``zoedepth bag eval`` on a corpus: several bags, folders of bags, globs or a list file.

The output folder holds one folder per bag under ``bags/`` (its full report, written as the bag
completes, atomically) keyed by the bag's identity, the model and the settings
(:func:`~zoedepth_ros.evaluation.corpus.result_key`), and the corpus report (report.md,
metrics.json) written at the end. A rerun with the same output folder evaluates only the bags
without a stored result for the same key: an interrupted run resumes, a changed bag or other
settings are evaluated again, and the merged report equals an uninterrupted run's. A bag that
cannot be read is listed with its reason and the run goes on. ``--out-bag`` becomes a folder
with one output bag per input bag.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from zoedepth_ros.cli.corpus_progress import CorpusProgress
from zoedepth_ros.errors import ZoeDepthError

if TYPE_CHECKING:
    from zoedepth_ros.evaluation.bags import BagEvalSettings
    from zoedepth_ros.inference import DepthEstimator

logger = logging.getLogger('zoedepth.bag')
RESULT = 'result.json'


def stored_results(output: Path) -> dict[str, dict[str, Any]]:
    """key -> stored result (result.json: key, bag, frames, evaluated, seconds) of every
    completed bag under ``output/bags``; its metrics stay in its metrics.json until the merge."""
    results = {}
    for path in sorted((output / 'bags').glob(f'*/{RESULT}')):
        data = json.loads(path.read_text())
        results[data['key']] = data
    return results


def bag_folder_name(bag: Path, key: str) -> str:
    return f'{bag.name}-{key[:8]}'


def evaluate_one(estimator: DepthEstimator, bag: Path, key: str, settings: BagEvalSettings,
                 output: Path, out_bag: Path | None, args: argparse.Namespace,
                 progress: CorpusProgress) -> dict[str, Any]:
    """Evaluate one bag into ``output/bags/<name>-<key>/`` (atomically); its result."""
    from zoedepth_ros.evaluation.bags import evaluate_bag
    from zoedepth_ros.evaluation.report import write_report
    from zoedepth_ros.io.atomic import atomic_directory, remove_stale_staging, write_json
    from zoedepth_ros.io.bag_writer import AtomicBagWriter

    folder = output / 'bags' / bag_folder_name(bag, key)
    # this rank alone owns the bag: what a killed run was writing for it goes
    stale = remove_stale_staging(folder) + (
        remove_stale_staging(out_bag) if out_bag is not None else 0)
    if stale:
        logger.info('%s: removed what an interrupted run left half-written', bag.name)
    start = time.perf_counter()
    writer = None
    if out_bag is not None:
        writer = AtomicBagWriter(out_bag, args.out_storage, args.out_version,
                                 overwrite=True)
    try:
        with atomic_directory(folder, overwrite=True) as staging:
            staging.mkdir()
            report = evaluate_bag(estimator, bag, settings, writer,
                                  lambda *_: progress.update(1))
            write_report(report, staging, [])
            result = {'key': key, 'bag': str(bag), 'frames': len(report.frames),
                      'evaluated': report.evaluated, 'seconds': time.perf_counter() - start}
            if writer is not None:  # before the result is in place: a bag stored as done
                writer.commit()      # has its output bag
                writer = None
            write_json(staging / RESULT, result)  # last: it marks the bag complete
    finally:
        if writer is not None:
            writer.abort()
    return result


def launch_workers(args: argparse.Namespace) -> int:
    """``--workers N`` on one machine: the same command in N processes started by
    torch.distributed's launcher (what torchrun runs), standalone rendezvous on this host."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    command, skip = [], False
    for item in args._argv:  # the command line again, without --workers
        if skip:
            skip = False
        elif item == '--workers':
            skip = True
        elif not item.startswith('--workers='):
            command.append(item)
    launcher = get_args_parser().parse_args(
        ['--standalone', '--nproc-per-node', str(args.workers), '--module',
         'zoedepth_ros.cli.main', *command])
    # each worker's intra-op threads: --threads, else its share of the cores (said here, so
    # the launcher does not warn that it picked 1)
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads or max(
        1, (os.cpu_count() or 1) // args.workers)))
    logger.info('%d worker processes (torch.distributed, standalone on this host)', args.workers)
    try:
        torchrun(launcher)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        if failure.exitcode == 2:  # an input or settings error, logged by the worker
            logger.error('worker %d stopped on the error above; the bags finished before it '
                         'are kept in %s', rank, args.output)
        else:
            how = (f'ended by {failure.signal_name()}' if failure.exitcode < 0
                   else f'failed (exit code {failure.exitcode})')
            logger.error('worker %d %s; the other workers were stopped. The bags finished so '
                         'far are stored in %s: run the same command again to evaluate what is '
                         'missing', rank, how, args.output)
        return 2 if failure.exitcode == 2 else 1
    return 0


def failure_file(output: Path, bag: Path, key: str) -> Path:
    return output / 'bags' / f'failed-{bag_folder_name(bag, key)}.json'


def output_bags(bags: list[Path], folder: Path | None) -> dict[Path, Path]:
    """Each bag's output bag in ``folder``, at the bag's path relative to the folder that holds
    every bag of the corpus, so that two bags with one name in different folders
    (``day1/run_a``, ``day2/run_a``) get two output bags. Empty without ``folder``."""
    if folder is None or not bags:
        return {}
    root = Path(os.path.commonpath([bag.parent for bag in bags]))
    return {bag: folder / bag.relative_to(root) for bag in bags}


def wait_for_ranks(rank: int, output: Path) -> bool:
    """Wait until every rank has evaluated its share; False when one ended before (logged)."""
    import torch.distributed as dist

    try:
        dist.barrier()
    except RuntimeError:  # a rank ended (killed, lost node) before the merge
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the launcher's stop: said here, once
        _rank_ended(rank, output, 'another rank ended before the merge (its connection '
                    'closed)')
        return False
    return True


def run_corpus(args: argparse.Namespace, bags: list[Path], settings: BagEvalSettings,
               estimator_factory: Any) -> int:
    """Evaluate the bags not yet stored, then write the corpus report (see module doc).

    Under torchrun (or ``--workers N``) each rank takes its share of the bags (balanced by
    size), on its own device (LOCAL_RANK) and its share of the cores; rank 0 merges the stored
    results once every rank is done. A rank that dies costs only its unfinished bag: the next
    run evaluates what is missing."""
    from zoedepth_ros.training.distributed import init_distributed, shutdown_distributed

    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world > 1 and args.device == 'auto':
        import torch

        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    cuda = str(args.device).startswith('cuda')
    if world > 1:
        if cuda:
            args.device = f'cuda:{os.environ.get("LOCAL_RANK", "0")}'
        elif not args.threads:
            args.threads = max(1, (os.cpu_count() or 1) // int(
                os.environ.get('LOCAL_WORLD_SIZE', str(world))))
    info = init_distributed('cuda' if cuda else 'cpu')
    if world > 1:  # the launcher stops the other ranks with SIGTERM when one ends
        signal.signal(signal.SIGTERM, _stopped)
    try:
        return _run(args, bags, settings, estimator_factory, info.rank, info.world_size)
    except RankStopped:  # the bag in hand is left unwritten (its staging removed)
        _rank_ended(info.rank, args.output, 'stopped by SIGTERM: another rank ended before '
                    'the merge, or the run was stopped')
        return 1
    finally:
        shutdown_distributed()


class RankStopped(BaseException):
    """SIGTERM in a rank (not an Exception: no handler for errors catches it)."""


def _stopped(number: int, frame: FrameType | None) -> None:
    raise RankStopped


def _rank_ended(rank: int, output: Path, why: str) -> None:
    logger.error('rank %d: %s. The bags of rank %d finished so far are stored in %s: run the '
                 'same command again to evaluate what is missing', rank, why, rank, output)


def _run(args: argparse.Namespace, bags: list[Path], settings: BagEvalSettings,
         estimator_factory: Any, rank: int, world: int) -> int:
    from zoedepth_ros.evaluation.bags import _settings_dict
    from zoedepth_ros.evaluation.corpus import balance, is_bag, model_identity, result_key
    from zoedepth_ros.io.atomic import write_json
    from zoedepth_ros.io.bag_reader import open_bag

    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    model = {**model_identity(args.model, args.model),
             **{name: str(getattr(args, name, '')) for name in (
                 'config', 'random_weights', 'precision', 'preprocess', 'flip', 'domain')},
             'device': str(args.device).split(':')[0]}  # a rank's GPU index is not a result
    settings_dict = _settings_dict(settings)
    keys = {bag: result_key(bag, model, settings_dict) for bag in bags}
    done = stored_results(output)
    out_bags = output_bags(bags, args.out_bag)
    # a stored result without the output bag asked for now is evaluated again
    todo = [bag for bag in bags
            if keys[bag] not in done or (bag in out_bags and not is_bag(out_bags[bag]))]
    if rank == 0:
        logger.info('%d bag(s): %d stored from an earlier run, %d to evaluate', len(bags),
                    len(bags) - len(todo), len(todo))
    todo = balance(todo, world)[rank]
    frames = 0
    failed: list[dict[str, str]] = []
    readable = []
    for bag in todo:  # a bag that cannot be opened is listed before any model loads
        try:
            with open_bag(bag) as reader:
                frames += sum(c.msgcount for c in reader.connections
                              if c.topic == settings.topics.image)
            readable.append(bag)
        except ZoeDepthError as err:
            failed.append({'bag': str(bag), 'reason': str(err), 'key': keys[bag]})
            logger.warning('%s: %s (skipped; the run goes on)', bag, err)
    todo = readable
    estimator = estimator_factory(args) if todo else None
    with CorpusProgress(output, rank, world, frames) as progress:
        for bag in todo:
            assert estimator is not None  # built when there is a bag to evaluate
            try:
                done[keys[bag]] = evaluate_one(estimator, bag, keys[bag], settings, output,
                                               out_bags.get(bag), args, progress)
            except ZoeDepthError as err:
                failed.append({'bag': str(bag), 'reason': str(err), 'key': keys[bag]})
                logger.warning('%s: %s (skipped; the run goes on)', bag, err)
        progress.finish()
        for item in failed:  # for rank 0's report (this run's; a later success supersedes it)
            write_json(failure_file(output, Path(item['bag']), item['key']), item)
        if world > 1 and not wait_for_ranks(rank, output):
            return 1
    if rank != 0:
        return 0
    if world > 1:
        done = stored_results(output)
    return merge(output, bags, keys, done, getattr(estimator, 'name', model['name']),
                 settings.sparse_topic is not None)


def merge(output: Path, bags: list[Path], keys: dict[Path, str],
          done: dict[str, dict[str, Any]], model: str, anchored: bool) -> int:
    """Write the corpus report from every stored result and failure file (rank 0)."""
    from zoedepth_ros.evaluation.corpus import pooled_corpus, pooled_pixel_stats
    from zoedepth_ros.evaluation.corpus_report import write_corpus_report

    failed = []
    for bag in bags:
        path = failure_file(output, bag, keys[bag])
        if keys[bag] not in done and path.is_file():
            failed.append({k: v for k, v in json.loads(path.read_text()).items() if k != 'key'})
    rows, results = [], {}
    for bag in bags:
        result = done.get(keys[bag])
        if result is None:
            continue
        # read back from the file for every bag: the same numbers whichever run evaluated it
        folder = bag_folder_name(bag, keys[bag])
        metrics = json.loads((output / 'bags' / folder / 'metrics.json').read_text())
        results[str(bag)] = metrics
        mix = {name: values['frames'] for name, values in metrics['per_domain'].items()}
        rows.append({'name': bag.name, 'bag': str(bag), 'folder': f'bags/{folder}',
                     'frames': result['frames'],
                     'evaluated': result['evaluated'], 'seconds': result['seconds'],
                     'domains': mix, **{k: metrics['overall'][k] for k in ('a1', 'abs_rel',
                                                                            'rmse')}})
    if not results:
        logger.error('no bag could be evaluated: %s', '; '.join(
            f'{item["bag"]}: {item["reason"]}' for item in failed))
        return 2
    pooled = pooled_corpus(results)
    write_corpus_report(output, rows, failed, pooled, pooled_pixel_stats(results), model,
                        anchored)
    overall = pooled['overall']
    logger.info('%d bag(s), %d evaluated frames%s: delta1 %.4f  REL %.4f  RMSE %.4f m',
                len(rows), overall['frames'], ', anchored' if anchored else '', overall['a1'],
                overall['abs_rel'], overall['rmse'])
    if failed:
        logger.warning('%d bag(s) could not be evaluated (listed in the report)', len(failed))
    logger.info('report: %s', output / 'report.md')
    return 0
