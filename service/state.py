"""What the routes of one app share: settings, the model and its predictor, offers, the store and metrics.

The model is loaded once, in the background when the app starts, and warmed with a few answers;
until then the service is alive but not ready. A store that cannot be written at start-up (or its
spool folder) keeps the service unready, naming the path and the reason, and is tried again with
backoff until it can: the service becomes ready then, and writes what an earlier process left in
the spool.
"""

from __future__ import annotations

import asyncio
import logging

from reason_classifier.classifier import Prediction, ReasonClassifier
from reason_classifier.errors import ConfigError
from reason_classifier.taxonomy import Taxonomy
from reason_classifier.webhooks.dispatcher import Dispatcher
from reason_classifier.webhooks.outbox import Outbox

from .cache import SharedAnswers
from .metrics import Metrics
from .offers import OfferBook, OffersConfig
from .predictor import Predictor
from .settings import ServiceSettings
from .store import AnswerStore, StoreUnavailable

log = logging.getLogger("service")

WARM_UP_ANSWERS = (
    "It's too expensive for what we use.",
    "The app keeps crashing when I export.",
    "太贵了",
    "Nikt nie odpowiadał na zgłoszenia.",
)


class ServiceState:
    """Everything the routes need, loaded once per app (`app.state.service`)."""

    def __init__(self, settings: ServiceSettings, classifier: ReasonClassifier | None) -> None:
        self.settings = settings
        self.library = settings.library()
        self.offers_config = OffersConfig.load(settings.offers)  # fail fast: before the server starts
        self.metrics = Metrics()
        self.classifier = classifier
        self.offer_book: OfferBook | None = None
        self.store: AnswerStore | None = None
        self.outbox: Outbox | None = None
        """The store's alert outbox, once the store is open and webhooks are configured."""
        self.dispatcher: Dispatcher | None = None
        self.trends = SharedAnswers(settings.trends_cache_seconds)
        self.retention = SharedAnswers(settings.trends_cache_seconds)
        self.predictor = Predictor(
            self._predict,
            max_batch=settings.max_predict_batch,
            on_batch=self.metrics.predict_seconds.observe,
            threads=settings.predict_threads,
        )
        self.ready = False
        self.load_error: str | None = None
        self.store_problem: str | None = None
        """Why the store cannot be written at start-up (names the path); the service waits, unready."""
        self._loading: asyncio.Task[None] | None = None

    @property
    def max_chars(self) -> int:
        return self.library.max_chars

    @property
    def model_version(self) -> str | None:
        """The model's version once it is loaded (even before it is warmed and the service ready), else None."""
        return self.classifier.version if self.classifier is not None else None

    @property
    def accepting_answers(self) -> bool:
        """False while the database is away and the settings say to refuse rather than spool."""
        store = self.store
        return store is None or self.settings.store_when_down == "spool" or store.up is not False

    async def start(self) -> None:
        self.predictor.start()
        self._loading = asyncio.get_running_loop().create_task(self._load(), name="load-model")

    async def wait_ready(self) -> None:
        """For tests and embedders: wait until loading finished (ready or failed)."""
        if self._loading is not None:
            await asyncio.shield(self._loading)

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        await self.predictor.stop()
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.stop)
        if self.store is not None:
            await asyncio.to_thread(self.store.close, self.settings.store_drain_seconds)

    def _predict(self, texts: list[str]) -> list[Prediction]:  # runs in the predictor's thread
        assert self.classifier is not None
        return self.classifier.predict(texts)

    async def _load(self) -> None:
        try:
            if self.classifier is None:
                library = self.library
                log.info("loading model %s", library.model or "(shipped default)")
                self.classifier = await asyncio.to_thread(ReasonClassifier.from_settings, library)
            self.offer_book = OfferBook(self.offers_config, self.classifier.taxonomy)
            self._check_webhook_teams(self.classifier.taxonomy)
            await self.predictor.predict(list(WARM_UP_ANSWERS), timeout=120)
            if self.settings.store:
                await self._open_store()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("the service cannot become ready")
            return
        self.ready = True
        self.metrics.ready.set(1)
        log.info("ready: model %s", self.classifier.version)

    async def _open_store(self) -> None:
        """Open the store and wait until a row can be written, trying again with backoff."""
        settings, delay = self.settings, 0.1
        while True:
            try:
                if self.store is None:
                    self.store = await asyncio.to_thread(
                        AnswerStore,
                        settings.store,
                        settings.store_spool or None,
                        retry_max_seconds=settings.store_retry_max_seconds,
                        on_rejected=self.metrics.store_rejected.inc,
                    )
                    self.metrics.track_store(self.store)
                await asyncio.to_thread(self.store.check)
            except (StoreUnavailable, OSError) as error:
                if self.store_problem != str(error):
                    log.error("not ready: %s; trying again", error)
                self.store_problem = str(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.store_retry_max_seconds)
                continue
            self.store_problem = None
            if settings.webhooks and self.dispatcher is None:
                self._start_dispatcher(self.store)
            log.info(
                "storing classified answers in %s (%s), through the spool %s",
                self.store.description,
                self.store.dialect,
                self.store.spool.folder,
            )
            return

    def _start_dispatcher(self, store: AnswerStore) -> None:
        """Deliver the outbox's alerts in the background: what an earlier process left, then each new one."""
        metrics = self.metrics
        self.outbox = Outbox(store.engine)
        self.dispatcher = Dispatcher(
            self.outbox,
            self.settings.webhooks,
            self.settings.webhook_retry,
            on_attempt=lambda attempt, status: metrics.alert_attempts.labels(attempt.result.value).inc(),
        ).start()
        store.on_alerts = self.dispatcher.wake
        metrics.track_outbox(self.outbox)
        log.info("delivering alerts to the webhooks of %s", ", ".join(sorted(self.settings.webhooks)))

    def _check_webhook_teams(self, taxonomy: Taxonomy) -> None:
        """Refuse a webhook for a team nothing alerts: a typo would leave the real team without alerts."""
        teams = self.offers_config.alerted_teams(taxonomy)
        for team in self.settings.webhooks:
            if team not in teams:
                raise ConfigError(
                    f"webhooks.{team}: no rule or taxonomy owner alerts team {team!r}; "
                    f"the teams alerted are {', '.join(sorted(teams))}"
                )
