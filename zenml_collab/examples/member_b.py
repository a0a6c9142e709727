"""Member B of the collaboration guide: inspect Pipeline A, copy it, change the trainer, run.

Run from the root of a clone of member A's repository, configured for the same stores.
"""

from zenml_collab import Repository, SklearnTrainer

repo = Repository.get_instance()
pipeline_a = repo.get_pipeline_by_name("Pipeline A")

# Look at what A did: the data, and how well A's model does.
pipeline_a.view_schema()
pipeline_a.view_statistics()
pipeline_a.view_anomalies()
pipeline_a.evaluate()

# Same data, split and preprocessing; another model. Everything before the trainer is a
# cache hit served from the team's stores.
pipeline_b = pipeline_a.copy(new_name="Pipeline B")
pipeline_b.add_trainer(SklearnTrainer(model="RandomForestClassifier", n_estimators=200,
                                      max_depth=6, random_state=0))
run = pipeline_b.run()
print(run.summary())
pipeline_b.evaluate()
