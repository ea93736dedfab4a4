"""The executed copy committed beside the figures: no stderr, progress bars or machine paths; errors kept."""

import nbformat

from beyond_backprop.executed_notebook import WIDGET, tidy_executed


def test_tidy_keeps_results_and_errors_and_drops_stderr_widgets_and_paths(tmp_path):
    cell = nbformat.v4.new_code_cell("work()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="C2.1 reproduced\n"),
        nbformat.v4.new_output("stream", name="stderr", text="100%|####| 200/200 [00:03<00:00]\n"),
        nbformat.v4.new_output("stream", name="stderr",
                               text="USDT:2026-12-02 SyncActivityProfilerHandler.cpp:52] profiler_start\n"),
        nbformat.v4.new_output("display_data", data={WIDGET: {"model_id": "x"}, "text/plain": "bar"}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
        nbformat.v4.new_output("error", ename="RuntimeError", evalue="shape mismatch", traceback=["tb"]),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("# text")])
    nb.metadata["papermill"] = {"input_path": "/home/me/x.ipynb", "output_path": "/tmp/x.ipynb", "duration": 3.0}
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "A1.ipynb"
    nbformat.write(nb, path)
    tidy_executed(path)
    tidied = nbformat.read(path, as_version=4)
    kinds = [(o["output_type"], o.get("name")) for o in tidied.cells[0].outputs]
    assert kinds == [("stream", "stdout"), ("display_data", None), ("error", None)]
    assert "image/png" in tidied.cells[0].outputs[1]["data"]
    assert tidied.metadata["papermill"] == {"duration": 3.0} and "widgets" not in tidied.metadata
    assert "profiler_start" not in path.read_text()
