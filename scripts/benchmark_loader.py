"""Measures the MUSIC loader's throughput (CCoL samples/s) on a data root."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from dataset import MUSICMixDataset, collate  # noqa: E402


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

    list_file = os.path.join(args.root, f"{args.split}.csv")
    sep_list = os.path.join(args.root, "test_sep.csv") if args.split == "test" else None
    dataset = MUSICMixDataset(args.root, list_file, args.split, mode=args.mode, num_mix=args.num_mix,
                              img_size=args.img_size, aud_len=args.aud_len, dup_trainset=args.dup_trainset,
                              sep_list=sep_list)
    print(dataset.describe())
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=args.split == "train",
                                         num_workers=args.workers, collate_fn=collate,
                                         persistent_workers=args.workers > 0)
    batches = iter(loader)
    next(batches)                      # warm-up: worker start and first file opens
    samples, start = 0, time.perf_counter()
    for _ in range(args.batches):
        try:
            batch = next(batches)
        except StopIteration:
            break
        samples += len(batch["infos"])
    seconds = time.perf_counter() - start
    result = {"samples_per_s": samples / seconds, "samples": samples, "seconds": seconds,
              "workers": args.workers, "batch_size": args.batch_size, "img_size": args.img_size,
              "aud_len": args.aud_len, "mode": args.mode, "split": args.split, "root": args.root,
              "cpus": os.cpu_count()}
    print(f"{result['samples_per_s']:.1f} {args.mode} samples/s ({samples} samples in {seconds:.1f} s, "
          f"{args.workers} workers, batch {args.batch_size})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
