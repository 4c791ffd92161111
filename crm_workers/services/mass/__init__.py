"""Mass operations: bulk delete, update and link, structure deletes (tags, fields, stages, pipelines), trash."""
