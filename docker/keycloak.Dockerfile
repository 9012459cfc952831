# The official Keycloak image with the apsis-sso extension in providers/, built once for
# PostgreSQL (kc.sh build) so the container starts with --optimized. The same build options
# as the production test lane (devenv/cluster.py BUILD_OPTIONS; tests/test_deploy_files.py).
ARG KEYCLOAK_VERSION=26.7.3

FROM maven:3.9.9-eclipse-temurin-21 AS extension
WORKDIR /src
COPY keycloak-extension/pom.xml ./
RUN mvn -q -B dependency:go-offline
COPY keycloak-extension/src ./src
RUN mvn -q -B package -DskipTests

FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION} AS builder
COPY --from=extension /src/target/apsis-sso-keycloak-extension-*.jar /opt/keycloak/providers/
RUN /opt/keycloak/bin/kc.sh build --db=postgres --health-enabled=true --metrics-enabled=true --event-metrics-user-enabled=true

FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}
COPY --from=builder /opt/keycloak/ /opt/keycloak/
# KC_*_PASSWORD_FILE / KC_*_SECRET_FILE: secrets from files (compose secrets), see the script.
COPY --chmod=0755 docker/keycloak-entrypoint.sh /opt/keycloak/bin/apsis-entrypoint.sh
# The image has no curl: ask the management port over bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=30 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9000 && printf 'GET /health/ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["/opt/keycloak/bin/apsis-entrypoint.sh"]
CMD ["start", "--optimized"]
