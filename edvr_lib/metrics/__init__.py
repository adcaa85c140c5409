"""Image-quality metrics with the reference conventions (BasicSR / EDVR papers): PSNR and SSIM on [0, 255]
images, averaged per frame -> per clip -> overall."""
from edvr_lib.metrics.averaging import average_overall, average_per_clip, summarize
from edvr_lib.metrics.psnr_ssim import calculate_psnr, calculate_ssim, rgb2y, tensor2img

__all__ = ["calculate_psnr", "calculate_ssim", "rgb2y", "tensor2img", "average_per_clip", "average_overall",
           "summarize"]
