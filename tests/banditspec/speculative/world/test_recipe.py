from banditspec.speculative.world import WorldRecipe


def test_an_opening_s_options_win_over_the_same_world_arguments(toy_cache):
    # an actor opens the user's world (--env-arg progress=true) with its own progress and threads
    recipe = WorldRecipe(env="toy", env_args={"config": "tiny", "cache_dir": str(toy_cache), "progress": True,
                                              "threads": 2, "max_new_tokens": 8})
    world = recipe.open(threads=1, progress=False)
    assert world.progress is False and world.threads == 1
    assert recipe.open().progress is True
