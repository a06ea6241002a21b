"""Measures the MUSIC loader's throughput (samples/s) on a data root, by wall clock and by CPU time."""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from dataset import MUSICMixDataset, collate  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="data root holding <split>.csv, frames, audio, detections")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="split to load (default: train)")
    parser.add_argument("--mode", default="ccol", choices=("ccol", "sop"), help="sample kind (default: ccol)")
    parser.add_argument("--num-mix", type=int, default=4, help="objects per sample (default: 4)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default: 2)")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per batch (default: 16)")
    parser.add_argument("--batches", type=int, default=30,
                        help="timed batches after one warm-up batch (default: 30)")
    parser.add_argument("--img-size", type=int, default=224, help="crop side (default: 224)")
    parser.add_argument("--aud-len", type=int, default=65535, help="clip length in samples (default: 65535)")
    parser.add_argument("--dup-trainset", type=int, default=40, help="train list repeats (default: 40)")
    parser.add_argument("--json", help="also write the result to this JSON file (default: none)")
    args = parser.parse_args(argv)

    sep_list = os.path.join(args.root, "test_sep.csv") if args.split == "test" else None
    dataset = MUSICMixDataset(args.root, os.path.join(args.root, f"{args.split}.csv"), args.split,
                              mode=args.mode, num_mix=args.num_mix, img_size=args.img_size, aud_len=args.aud_len,
                              dup_trainset=args.dup_trainset, sep_list=sep_list)
    print(dataset.describe())
    # Exactly the samples the loop consumes, so the workers' CPU time is all spent on them.
    total = min(len(dataset), (args.batches + 1) * args.batch_size)
    subset = torch.utils.data.Subset(dataset, torch.randperm(len(dataset))[:total].tolist())
    if args.workers == 0:
        torch.set_num_threads(1)          # as in a DataLoader worker
    loader = torch.utils.data.DataLoader(subset, batch_size=args.batch_size, num_workers=args.workers,
                                         collate_fn=collate)
    cpu_start = cpu_seconds()
    batches = iter(loader)
    next(batches)                         # warm-up: worker start and first file opens
    samples, start = 0, time.perf_counter()
    for batch in batches:
        samples += len(batch["infos"])
    seconds = time.perf_counter() - start
    del batches                           # joins the workers, so their CPU time is counted
    cpu_per_sample = (cpu_seconds() - cpu_start) / total
    result = {"samples_per_s": samples / seconds, "cpu_ms_per_sample": 1e3 * cpu_per_sample,
              "samples_per_s_per_free_core": 1 / cpu_per_sample, "samples": samples, "seconds": seconds,
              "workers": args.workers, "batch_size": args.batch_size, "img_size": args.img_size,
              "aud_len": args.aud_len, "mode": args.mode, "split": args.split, "root": args.root,
              "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    print(f"{result['samples_per_s']:.1f} {args.mode} samples/s ({samples} samples in {seconds:.1f} s, "
          f"{args.workers} workers, batch {args.batch_size}); {result['cpu_ms_per_sample']:.1f} ms CPU per sample, "
          f"i.e. {result['samples_per_s_per_free_core']:.0f} samples/s per free core "
          f"(load average {result['load_avg_1min']:.1f} on {result['cpus']} CPUs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
