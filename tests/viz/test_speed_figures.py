"""Speed and parity figures of notebooks 00 and 06: what they plot follows from their inputs."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from edvr_lib.viz.speed_figures import output_difference_figure, parity_figure, speed_figure, throughput_figure


def test_throughput_figure_divides_the_counted_flops_by_the_measured_rate():
    fig = throughput_figure({"devices": [{"name": "cpu", "dense_conv_gflops": 100.0},
                                         {"name": "idle", "dense_conv_gflops": None}]}, sizes=(64, 128))
    bars, (line,) = fig.axes[0].patches, fig.axes[1].lines
    assert [b.get_height() for b in bars] == [100.0]  # a device without a measurement is not drawn
    # EDVR-M counts 66.44 GFLOP at 64 x 64 (tests/tutorial/test_network_tour.py); 4x the pixels, 4x the work
    assert line.get_ydata() == pytest.approx([664.42231808, 4 * 664.42231808], rel=1e-9)
    plt.close(fig)


def test_speed_and_parity_figures_label_their_values():
    fig = speed_figure({"torch": 0.2, "onnxruntime": 0.05}, "speed")
    assert [t.get_text() for t in fig.axes[0].texts] == ["200 ms", "50 ms"]
    plt.close(fig)
    fig = parity_figure(["8x8", "16x16"], [1e-7, 2e-6], 1e-4, "parity")
    assert [b.get_height() for b in fig.axes[0].patches] == [1e-7, 2e-6]
    assert fig.axes[0].lines[0].get_ydata()[0] == 1e-4
    plt.close(fig)


def test_output_difference_figure_counts_differing_pixels():
    a = np.zeros((4, 6, 3), np.uint8)
    b = a.copy()
    b[1, 2, 0], b[3, 5, 2] = 3, 1
    fig = output_difference_figure(a, b, "diff")
    assert fig.axes[2].get_title() == "2 of 24 px differ (max 3)"
    plt.close(fig)
