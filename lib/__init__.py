"""The project's code: the numbered scripts, the DAG and the job runner only launch these modules."""
