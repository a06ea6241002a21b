"""Open-vocabulary instrument boxes: OWL-ViT / OWLv2 (Hugging Face `transformers`) queried with the
class table's instrument names.

`OwlDetector` is called like a torchvision detection model (a list of float (3, H, W) images in
[0, 1] in, one dict of `boxes` (N, 4) x1 y1 x2 y2 in pixels of the image, `labels` (N,) and `scores`
(N,) out), so `scripts/detect_objects.model_rows` writes its CoSep rows unchanged. Labels are
detection class ids of the one class table: `layout.detection_class_id(name)` (id + 1).

Weights: a model id (e.g. google/owlvit-base-patch32, google/owlv2-base-patch16-ensemble) taken
from the Hugging Face hub cache, or fetched into it when online, or a local folder written by
`save_pretrained` (model and processor). `transformers` is imported on first use only.
"""

from __future__ import annotations

import os

import torch

from . import layout

DEFAULT_MODEL = "google/owlvit-base-patch32"
QUERY_TEMPLATE = "a photo of a {}"
SCORE_THRESH = 0.1  # OWL-ViT's sigmoid scores run lower than a closed-set detector's
TOP_K = 5  # boxes kept per frame, best first
NMS_IOU = 0.5  # class-agnostic: one instrument gets one box, under the query it matches best
MODEL_TYPES = ("owlvit", "owlv2")


class WeightsError(RuntimeError):
    """The detector's weights cannot be loaded (message meant for the user)."""


def query_text(class_name: str, template: str = QUERY_TEMPLATE) -> str:
    """The text query of a table class: `acoustic_guitar` -> 'a photo of a acoustic guitar'."""
    return template.format(class_name.replace("_", " "))


def parse_classes(spec: str | None) -> tuple[str, ...]:
    """Classes to query: None or 'music21' (all 21 of the table), 'music11', or a comma list."""
    if spec is None or spec == "music21":
        return layout.MUSIC21_CLASSES
    if spec == "music11":
        return layout.MUSIC_CLASSES
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [name for name in names if name not in layout.CLASS_TO_ID]
    if unknown or not names:
        raise ValueError(
            f"unknown class name(s) {unknown or spec!r}; known: {', '.join(layout.MUSIC21_CLASSES)}"
        )
    return names


def hub_cache() -> str:
    """Where `transformers` looks for hub models now (as huggingface_hub resolves it)."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return os.path.expandvars(os.path.expanduser(cache))


def offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (huggingface_hub reads them at import)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in {"1", "ON", "YES", "TRUE"}


def load_model(weights: str):
    """(model, processor) of an OWL-ViT or OWLv2 model id or local folder; WeightsError if absent.

    A model id is read from the hub cache (`hub_cache()`), or downloaded into it unless offline.
    """
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    local = os.path.isdir(weights)
    if not local and (os.path.exists(weights) or weights.startswith((".", "/", "~"))):
        raise WeightsError(
            f"--weights {weights}: not a folder. Pass a Hugging Face model id (e.g. "
            f"{DEFAULT_MODEL}) or a folder written by save_pretrained (model and processor)."
        )
    only_local = local or offline()
    cache = None if local else hub_cache()
    try:
        model = AutoModelForZeroShotObjectDetection.from_pretrained(
            weights, local_files_only=only_local, cache_dir=cache
        )
        processor = AutoProcessor.from_pretrained(
            weights, local_files_only=only_local, cache_dir=cache
        )
    except (OSError, ValueError) as err:
        detail = " ".join(str(err).split())[:400]
        if local:
            raise WeightsError(
                f"--weights {weights}: not an OWL-ViT/OWLv2 folder with model and processor "
                f"files, as save_pretrained writes them ({detail})"
            ) from err
        how = "offline (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE)" if offline() else "not downloadable"
        raise WeightsError(
            f"--weights {weights}: model id not in the Hugging Face hub cache {cache} and "
            f"{how}. transformers looks there (set by HF_HUB_CACHE, or HF_HOME/hub); fetch it "
            f"once online (from_pretrained('{weights}') caches it), or pass --weights a local "
            f"folder holding the model and processor saved with save_pretrained. ({detail})"
        ) from err
    if model.config.model_type not in MODEL_TYPES:
        raise WeightsError(
            f"--weights {weights}: a {model.config.model_type} model, not one of {MODEL_TYPES}"
        )
    return model, processor


class OwlDetector:
    """OWL-ViT/OWLv2 with fixed text queries, as a torchvision-style detector of our class ids.

    The queries are embedded once; each call embeds a batch of frames and scores every image patch's
    box against them. A box's label is its best query; boxes under `score_thresh` are dropped, then
    class-agnostic NMS at `nms_iou`, then the `top_k` best of each frame are kept.
    """

    def __init__(
        self,
        model,
        processor,
        classes: tuple[str, ...] = layout.MUSIC21_CLASSES,
        device: str | torch.device = "cpu",
        score_thresh: float = SCORE_THRESH,
        top_k: int = TOP_K,
        nms_iou: float = NMS_IOU,
        template: str = QUERY_TEMPLATE,
    ):
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = torch.device(device)
        self.classes = tuple(classes)
        self.queries = [query_text(name, template) for name in self.classes]
        self.score_thresh, self.top_k, self.nms_iou = score_thresh, top_k, nms_iou
        # The square model input is the image stretched (OWL-ViT) or padded to a square at the
        # bottom/right first (OWLv2): boxes scale back by (W, H) or by max(W, H) on both axes.
        self.padded_square = model.config.model_type == "owlv2"
        self.class_ids = torch.tensor(
            [layout.detection_class_id(name) for name in self.classes], device=self.device
        )  # (Q,): query index -> detection class id
        self.query_embeds = self.embed_queries()  # (Q, D)

    @torch.inference_mode()
    def embed_queries(self) -> torch.Tensor:
        """The queries' projected text embeddings (Q, D), as the model's forward computes them."""
        tokens = self.processor.tokenizer(
            self.queries, padding="max_length", truncation=True, return_tensors="pt"
        )  # input_ids, attention_mask (Q, L)
        out = self.model.base_model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=tokens["attention_mask"].to(self.device),
        )
        # transformers 5 returns the text model's output with the projection as its pooler_output.
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    @torch.inference_mode()
    def raw_outputs(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, P, Q) and pred_boxes (B, P, 4) cxcywh in [0, 1] of the model input."""
        uint8 = [(img.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8) for img in images]
        pixels = self.processor.image_processor(images=uint8, return_tensors="pt")["pixel_values"]
        feature_map = self.model.image_embedder(pixel_values=pixels.to(self.device))[0]
        batch, rows, cols, width = feature_map.shape  # (B, h, w, C): one box per image patch
        image_feats = feature_map.reshape(batch, rows * cols, width)  # (B, P, C)
        queries = self.query_embeds.unsqueeze(0).expand(batch, -1, -1)  # (B, Q, D)
        logits = self.model.class_predictor(image_feats, queries, None)[0]  # (B, P, Q)
        boxes = self.model.box_predictor(image_feats, feature_map)  # (B, P, 4)
        return logits, boxes

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detections of each float (3, H, W) image in [0, 1]: boxes (N, 4) in its pixels, labels
        (N,) detection class ids, scores (N,), best first, N <= top_k."""
        from torchvision.ops import batched_nms, box_convert

        logits, boxes = self.raw_outputs(images)
        scores, query = torch.sigmoid(logits).max(dim=-1)  # (B, P): best query of each box
        corners = box_convert(boxes.float(), "cxcywh", "xyxy")  # (B, P, 4) in [0, 1]
        results = []
        for img, score, label, box in zip(images, scores, query, corners):
            height, width = img.shape[-2:]
            scale = (max(width, height),) * 2 if self.padded_square else (width, height)
            box = box * box.new_tensor(scale * 2)  # pixels of this image
            box[:, 0::2] = box[:, 0::2].clamp(0, width)
            box[:, 1::2] = box[:, 1::2].clamp(0, height)
            size = box[:, 2:] - box[:, :2]  # (P, 2): under a pixel in view is no box, as in
            keep = (score >= self.score_thresh) & (size >= 1).all(dim=1)  # annotation_rows
            box, score, label = box[keep], score[keep], label[keep]
            keep = batched_nms(box, score, torch.zeros_like(label), self.nms_iou)[: self.top_k]
            results.append(
                {
                    "boxes": box[keep],
                    "labels": self.class_ids[label[keep]],
                    "scores": score[keep],
                }
            )
        return results


def build_detector(
    weights: str,
    device: str | torch.device = "cpu",
    classes: tuple[str, ...] = layout.MUSIC21_CLASSES,
    **options,
) -> OwlDetector:
    """An OwlDetector of a model id or local folder; WeightsError when it cannot be loaded."""
    model, processor = load_model(weights)
    return OwlDetector(model, processor, classes, device, **options)
