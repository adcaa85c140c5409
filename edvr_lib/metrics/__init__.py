"""Image-quality metrics with the reference conventions (BasicSR / EDVR papers).

``calculate_psnr`` / ``calculate_ssim`` on [0, 255] images, plus per-frame -> per-clip
-> overall averaging.
"""
from edvr_lib.metrics.averaging import average_overall, average_per_clip, summarize
from edvr_lib.metrics.psnr_ssim import calculate_psnr, calculate_ssim, reorder_image, rgb2y, tensor2img

METRICS = {"psnr": calculate_psnr, "ssim": calculate_ssim}

__all__ = ["METRICS", "calculate_psnr", "calculate_ssim", "rgb2y", "reorder_image", "tensor2img",
           "average_per_clip", "average_overall", "summarize"]
