"""The torch-free half of `cope eval`: LaMP / LongLaMP data, which users and questions a run tests,
ROUGE and the statistics, reports, and results files with the merge of shards. The runner that
trains and drafts is trainer.eval."""
