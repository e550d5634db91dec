"""The authoring API: tasks, pipelines, params, retry policies and the task context.

Pure Python with no heavy imports: ``import legato`` must stay fast.
"""
